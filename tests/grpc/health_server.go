// A gRPC health server on grpc-go for tests/grpc.rs, built in GOPATH mode
// against Debian's golang-google-grpc-dev:
//
//	health_server [--no-health]
//
// Listens on a free 127.0.0.1 port, prints "port N", then reads commands on
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
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	status := health.NewServer()
	if len(os.Args) < 2 || os.Args[1] != "--no-health" {
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
