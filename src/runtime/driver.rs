//! The one driver of non-blocking sockets: it carries out what a sans-IO
//! machine asks (connect, send datagrams, write, read) until a socket would
//! block, for probes and DNS lookups alike, over TCP, UDP or a unix socket.
//! mio is edge-triggered, so every
//! write and read loops until `WouldBlock` and retries on `Interrupted`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use mio::net::{TcpStream, UdpSocket, UnixStream};
use mio::{Interest, Registry, Token};

use super::sockopt;

/// A machine's socket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Unix(UnixStream),
}

impl Socket {
    /// Whether a non-blocking connect has completed: None while in
    /// progress (a UDP socket never waits).
    pub(crate) fn connect_result(&self) -> Option<io::Result<()>> {
        match self {
            Socket::Tcp(stream) => connect_result(stream),
            Socket::Unix(stream) => {
                match stream.take_error() {
                    Ok(Some(e)) | Err(e) => return Some(Err(e)),
                    Ok(None) => {}
                }
                match stream.peer_addr() {
                    Ok(_) => Some(Ok(())),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
                    Err(e) => Some(Err(e)),
                }
            }
            Socket::Udp(_) => Some(Ok(())),
        }
    }
}

/// What a machine asks of its socket next.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// Connect a TCP stream to this address, closing any current socket;
    /// then wait for the connect to complete.
    Connect(SocketAddr),
    /// Connect a stream to the machine's unix socket, as [`Step::Connect`].
    ConnectUnix,
    /// A UDP socket on a random port connected to this address, with the
    /// machine's datagrams sent; then receive.
    Datagrams(SocketAddr),
    /// Write the machine's output.
    Send,
    /// Read and hand the bytes to the machine.
    Receive,
    /// The machine is done with its socket (closed now), with this outcome.
    Done(T),
}

/// A sans-IO machine as the driver sees it.
pub(crate) trait Endpoint {
    type Outcome;
    /// The largest datagram read, plus one to see an oversized one.
    const MAX_DATAGRAM: usize = 0;
    /// SO_LINGER for its TCP connections, in seconds (None: the default).
    const LINGER_SECS: Option<libc::c_int> = None;
    /// The bytes still to write.
    fn output(&self) -> &[u8];
    /// The socket path of a [`Step::ConnectUnix`].
    fn socket_path(&self) -> &Path {
        Path::new("")
    }
    /// The datagrams of a [`Step::Datagrams`].
    fn datagrams(&self) -> [&[u8]; 2] {
        [&[], &[]]
    }
    fn wrote(&mut self, n: usize) -> Step<Self::Outcome>;
    /// Bytes arrived (never empty over TCP: that is [`Endpoint::eof`]).
    fn received(&mut self, data: &[u8]) -> Step<Self::Outcome>;
    /// The TCP peer closed its side.
    fn eof(&mut self) -> Step<Self::Outcome>;
    /// A socket could not be opened (connected, registered, sent on).
    fn open_failed(&mut self, err: &io::Error) -> Step<Self::Outcome>;
    /// A read or write failed.
    fn io_failed(&mut self, err: &io::Error) -> Step<Self::Outcome>;
}

/// Carries out `step` and those that follow until one has to wait for
/// readiness (None) or the machine is done (its outcome; the socket is
/// closed then).
pub(crate) fn drive<E: Endpoint>(
    machine: &mut E,
    socket: &mut Option<Socket>,
    mut step: Step<E::Outcome>,
    registry: &Registry,
    token: Token,
    scratch: &mut [u8],
) -> Option<E::Outcome> {
    loop {
        step = match step {
            Step::Connect(addr) => {
                // Closing removes a socket from the poll too: an explicit
                // deregister would cost one more syscall for nothing.
                *socket = None;
                let opened = TcpStream::connect(addr).and_then(|mut stream| {
                    if let Some(secs) = E::LINGER_SECS {
                        sockopt::set_linger(&stream, secs);
                    }
                    registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                    Ok(stream)
                });
                match opened {
                    Ok(stream) => {
                        *socket = Some(Socket::Tcp(stream));
                        return None;
                    }
                    Err(e) => machine.open_failed(&e),
                }
            }
            Step::ConnectUnix => {
                *socket = None;
                let opened = UnixStream::connect(machine.socket_path()).and_then(|mut stream| {
                    registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                    Ok(stream)
                });
                match opened {
                    Ok(stream) => {
                        *socket = Some(Socket::Unix(stream));
                        return None;
                    }
                    Err(e) => machine.open_failed(&e),
                }
            }
            Step::Datagrams(server) => {
                *socket = None;
                match open_udp(server, machine.datagrams(), registry, token) {
                    Ok(udp) => {
                        *socket = Some(Socket::Udp(udp));
                        Step::Receive
                    }
                    Err(e) => machine.open_failed(&e),
                }
            }
            Step::Send => {
                let written = match socket.as_mut() {
                    Some(Socket::Tcp(stream)) => stream.write(machine.output()),
                    Some(Socket::Udp(udp)) => udp.send(machine.output()),
                    Some(Socket::Unix(stream)) => stream.write(machine.output()),
                    None => unreachable!("sending needs a socket"),
                };
                match written {
                    Ok(n) => machine.wrote(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Send,
                    Err(e) => machine.io_failed(&e),
                }
            }
            Step::Receive => {
                let read = match socket.as_mut() {
                    Some(Socket::Tcp(stream)) => match stream.read(scratch) {
                        Ok(0) => Ok(None),
                        read => read.map(Some),
                    },
                    Some(Socket::Udp(udp)) => udp.recv(&mut scratch[..E::MAX_DATAGRAM]).map(Some),
                    Some(Socket::Unix(stream)) => match stream.read(scratch) {
                        Ok(0) => Ok(None),
                        read => read.map(Some),
                    },
                    None => unreachable!("receiving needs a socket"),
                };
                match read {
                    Ok(None) => machine.eof(),
                    Ok(Some(n)) => machine.received(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Receive,
                    Err(e) => machine.io_failed(&e),
                }
            }
            Step::Done(outcome) => {
                *socket = None;
                return Some(outcome);
            }
        };
    }
}

/// Whether a non-blocking connect has completed: None while in progress.
pub(crate) fn connect_result(stream: &TcpStream) -> Option<io::Result<()>> {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Some(Err(e)),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(e) => Some(Err(e)),
    }
}

/// A UDP socket on a random port, connected to `server` (so the kernel
/// drops datagrams from any other source), with `datagrams` sent.
fn open_udp(server: SocketAddr, datagrams: [&[u8]; 2], registry: &Registry, token: Token) -> io::Result<UdpSocket> {
    let any = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let mut socket = UdpSocket::bind(any)?;
    socket.connect(server)?;
    for datagram in datagrams {
        socket.send(datagram)?;
    }
    registry.register(&mut socket, token, Interest::READABLE)?;
    Ok(socket)
}
