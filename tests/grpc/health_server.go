// A gRPC health server on grpc-go for tests/grpc.rs, built in GOPATH mode
// against Debian's golang-google-grpc-dev:
//
//	health_server [--no-health] [--tls CERT KEY]
//
// Listens on a free 127.0.0.1 port (over TLS with --tls, PEM files), prints "port N", then reads commands on
// stdin, one a line, answering "ok" to each:
//
//	set SERVICE STATUS    (SERVICE "-" is the server as a whole, "")
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var options []grpc.ServerOption
	register := true
	for i, arg := range os.Args {
		switch {
		case arg == "--no-health":
			register = false
		case arg == "--tls" && i+2 < len(os.Args):
			creds, err := credentials.NewServerTLSFromFile(os.Args[i+1], os.Args[i+2])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			options = append(options, grpc.Creds(creds))
		}
	}
	server := grpc.NewServer(options...)
	status := health.NewServer()
	if register {
		healthpb.RegisterHealthServer(server, status)
	}
	go server.Serve(lis)
	fmt.Printf("port %d\n", lis.Addr().(*net.TCPAddr).Port)
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		words := strings.Fields(lines.Text())
		if len(words) == 3 && words[0] == "set" {
			service := words[1]
			if service == "-" {
				service = ""
			}
			value := healthpb.HealthCheckResponse_ServingStatus_value[words[2]]
			status.SetServingStatus(service, healthpb.HealthCheckResponse_ServingStatus(value))
		}
		fmt.Println("ok")
	}
	server.Stop()
}
