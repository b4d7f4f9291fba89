"""An HTTPS upstream for tests/kubelet.rs, configured per case.

    tls_server.py CERT KEY VERSION CLIENT_CERT REPLY

VERSION is any, 1.2 or 1.3; CLIENT_CERT is yes (demand one) or no; REPLY is
`ok`, `status:N` or `redirect:URL`. It listens on 127.0.0.1 on a free port,
prints the port on a line, and answers each connection in a thread of its
own (a client that never finishes its handshake blocks nothing else), with
`Connection: close`, until killed.
"""

import socket
import ssl
import sys
import threading


def reply_bytes(reply):
    if reply.startswith("status:"):
        code = int(reply.split(":", 1)[1])
        return b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % code
    if reply.startswith("redirect:"):
        location = reply.split(":", 1)[1].encode()
        return b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def handle(ctx, conn, answer):
    try:
        conn.settimeout(5)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                head += chunk
            tls.sendall(answer)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main():
    cert, key, version, client_cert, reply = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if client_cert == "yes":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cert)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    answer = reply_bytes(reply)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(ctx, conn, answer), daemon=True).start()


if __name__ == "__main__":
    main()
