// The original Go healthcheck, re-created from its write-up for the size comparison in
// README "Size" (its own source is not available): PORT TIMEOUT URL...;
// /self answers 200; /all GETs every URL in turn with the timeout, 503 if any fails.
package main

import (
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	port := os.Args[1]
	secs, _ := strconv.Atoi(os.Args[2])
	endpoints := os.Args[3:]
	client := &http.Client{Timeout: time.Duration(secs) * time.Second}
	http.HandleFunc("/self", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	http.HandleFunc("/all", func(w http.ResponseWriter, r *http.Request) {
		for _, e := range endpoints {
			resp, err := client.Get(e)
			if err != nil || resp.StatusCode < 200 || resp.StatusCode >= 400 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			resp.Body.Close()
		}
		w.WriteHeader(http.StatusOK)
	})
	http.ListenAndServe(":"+port, nil)
}
