// The reference side of tests/kubelet.rs: HTTP probes made the way kubelet's
// prober makes them (pkg/probe/http: its transport settings, redirect
// checker, body limit and status rule), and URL references resolved with
// net/url, so the probe state machine can be compared with them.
//
// Input on stdin, one job a line, fields hex-encoded and tab-separated:
//   probe  URL  [HEADER-LINE ...]   -> "pass" or "fail <error>"
//   resolve  BASE  REFERENCE        -> "ok <hex of the result>" or "invalid"
// Answers come in input order; probes run concurrently.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// What kubelet reads of a probe's body at most; more is not an error.
const bodyLimit = 10 * 1024

// kubelet's transport: no keep-alive, no proxy, no compression asked for.
var transport = &http.Transport{
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
	DisableKeepAlives:   true,
	DisableCompression:  true,
	Proxy:               http.ProxyURL(nil),
	TLSHandshakeTimeout: 10 * time.Second,
}

// kubelet follows redirects only to the host it started on, and stops when
// ten requests have been made.
func sameHostOnly(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

func probe(rawURL string, lines []string, timeout time.Duration) string {
	headers := http.Header{}
	for _, line := range lines {
		name, value, _ := strings.Cut(line, ":")
		headers.Add(name, strings.TrimSpace(value))
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", "kube-probe/1.31")
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		return "fail " + err.Error()
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	client := &http.Client{Timeout: timeout, Transport: transport, CheckRedirect: sameHostOnly}
	res, err := client.Do(req)
	if err != nil {
		return "fail " + err.Error()
	}
	defer res.Body.Close()
	limited := &io.LimitedReader{R: res.Body, N: bodyLimit}
	if _, err := io.ReadAll(limited); err != nil {
		return "fail " + err.Error()
	}
	if res.StatusCode >= 200 && res.StatusCode < 400 {
		return "pass"
	}
	return fmt.Sprintf("fail status %d", res.StatusCode)
}

func resolve(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return "invalid"
	}
	u, err := b.Parse(ref)
	if err != nil {
		return "invalid"
	}
	// Without userinfo, as the Referer Go sends.
	u.User = nil
	return "ok " + hex.EncodeToString([]byte(u.String()))
}

func main() {
	timeout := 2 * time.Second
	if len(os.Args) > 1 {
		if d, err := time.ParseDuration(os.Args[1]); err == nil {
			timeout = d
		}
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	var jobs [][]string
	for in.Scan() {
		var fields []string
		for _, f := range strings.Split(in.Text(), "\t") {
			b, err := hex.DecodeString(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bad input line")
				os.Exit(2)
			}
			fields = append(fields, string(b))
		}
		jobs = append(jobs, fields)
	}
	answers := make([]string, len(jobs))
	var wg sync.WaitGroup
	for i, fields := range jobs {
		switch fields[0] {
		case "probe":
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = probe(fields[1], fields[2:], timeout)
			}()
		case "resolve":
			answers[i] = resolve(fields[1], fields[2])
		}
	}
	wg.Wait()
	for _, a := range answers {
		fmt.Println(strings.ReplaceAll(a, "\n", " "))
	}
}
