// A Go net/http client probing the way kubelet does (DisableKeepAlives, a
// per-probe timeout, kubelet's redirect rule), then the same URLs again on a
// keep-alive client. Prints "STATUS BODY-FIRST-LINE" per request.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	probe := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	keepAlive := &http.Client{Timeout: 3 * time.Second}
	for _, client := range []*http.Client{probe, keepAlive} {
		for _, url := range os.Args[1:] {
			resp, err := client.Get(url)
			if err != nil {
				fmt.Println("ERROR", err)
				os.Exit(2)
			}
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			resp.Body.Close()
			fmt.Println(resp.StatusCode, strings.TrimSpace(line))
		}
	}
}
