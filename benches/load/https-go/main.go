// The Go side of the load bench's HTTPS row: kubelet's HTTPS prober
// (pkg/probe/http: InsecureSkipVerify, no keep-alive, no proxy, a new
// connection per probe) doing ROUNDS rounds of one GET to each URL, the
// GETs of a round concurrent, as kubelet probes 8 containers at once. It
// prints the rounds done and its own CPU (user+sys, microseconds) per round.
//
//	https-go ROUNDS URL...
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	rounds, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: https-go ROUNDS URL...")
		os.Exit(2)
	}
	urls := os.Args[2:]
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:   true,
		DisableCompression:  true,
		Proxy:               http.ProxyURL(nil),
		TLSHandshakeTimeout: 10 * time.Second,
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		failed := false
		var mu sync.Mutex
		for _, u := range urls {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				res, err := client.Get(u)
				if err == nil {
					io.Copy(io.Discard, io.LimitReader(res.Body, 10*1024))
					res.Body.Close()
				}
				if err != nil || res.StatusCode != 200 {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}(u)
		}
		wg.Wait()
		if failed {
			fmt.Fprintln(os.Stderr, "a GET failed")
			os.Exit(1)
		}
	}
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	us := func(t syscall.Timeval) int64 { return t.Sec*1e6 + int64(t.Usec) }
	cpu := us(after.Utime) - us(before.Utime) + us(after.Stime) - us(before.Stime)
	fmt.Printf("%d %.0f\n", rounds, float64(cpu)/float64(rounds))
}
