//! Upstream stubs: many loopback health endpoints served by one mio thread,
//! each answering `200 ok` to one request per connection, at once or after a
//! fixed delay.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
/// How often the thread looks at the stop flag when nothing happens.
const STOP_CHECK: Duration = Duration::from_millis(50);
/// A probe request is a few hundred bytes; more than this is not one.
const MAX_REQUEST: usize = 4096;

/// The running stub thread and the ports of its endpoints.
pub struct Stubs {
    /// Endpoints that answer at once.
    pub fast: Vec<u16>,
    /// Endpoints that answer after the delay given to [`Stubs::start`].
    pub slow: Vec<u16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Conn {
    stream: TcpStream,
    request: Vec<u8>,
    delayed: bool,
}

impl Stubs {
    pub fn start(fast: usize, slow: usize, delay: Duration) -> io::Result<Stubs> {
        let poll = Poll::new()?;
        let mut listeners = Vec::with_capacity(fast + slow);
        let mut ports = Vec::with_capacity(fast + slow);
        for i in 0..fast + slow {
            let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            poll.registry().register(&mut listener, Token(i), Interest::READABLE)?;
            ports.push(listener.local_addr()?.port());
            listeners.push(listener);
        }
        let slow_ports = ports.split_off(fast);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("stubs".into())
            .spawn(move || serve(poll, listeners, fast, delay, &flag))?;
        Ok(Stubs { fast: ports, slow: slow_ports, stop, thread: Some(thread) })
    }
}

impl Drop for Stubs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The stub loop: listeners below `fast` answer at once, the others after
/// `delay`.
fn serve(mut poll: Poll, listeners: Vec<TcpListener>, fast: usize, delay: Duration, stop: &AtomicBool) {
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut next = listeners.len();
    let mut buf = [0u8; MAX_REQUEST];
    while !stop.load(Ordering::Relaxed) {
        let wait = timers.peek().map_or(STOP_CHECK, |Reverse((at, _))| at.saturating_duration_since(Instant::now()));
        if poll.poll(&mut events, Some(wait.min(STOP_CHECK))).is_err() {
            continue; // EINTR
        }
        for event in events.iter() {
            let token = event.token();
            if let Some(listener) = listeners.get(token.0) {
                while let Ok((mut stream, _)) = listener.accept() {
                    let t = Token(next);
                    next += 1;
                    if poll.registry().register(&mut stream, t, Interest::READABLE).is_ok() {
                        conns.insert(t, Conn { stream, request: Vec::new(), delayed: token.0 >= fast });
                    }
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&token) else { continue };
            match read_request(conn, &mut buf) {
                Some(true) if conn.delayed => timers.push(Reverse((Instant::now() + delay, token.0))),
                Some(true) => answer(&mut conns, token),
                Some(false) => {}
                None => drop(conns.remove(&token)),
            }
        }
        let now = Instant::now();
        while let Some(&Reverse((at, t))) = timers.peek() {
            if at > now {
                break;
            }
            timers.pop();
            answer(&mut conns, Token(t));
        }
    }
}

/// Reads what arrived: Some(true) once the request head is complete,
/// Some(false) to wait for more, None when the connection is done for.
/// A complete head ends the reading at once: the connection closes after
/// the answer, so the stubs spend no read on `WouldBlock`.
fn read_request(conn: &mut Conn, buf: &mut [u8]) -> Option<bool> {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return None,
            Ok(n) if conn.request.len() + n <= MAX_REQUEST => {
                conn.request.extend_from_slice(&buf[..n]);
                if conn.request.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Some(true);
                }
            }
            Ok(_) => return None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Writes the answer and closes: a probe sends one request per connection.
fn answer(conns: &mut HashMap<Token, Conn>, token: Token) {
    if let Some(mut conn) = conns.remove(&token) {
        // Loopback takes a hundred bytes at once; a short write only happens
        // to a peer already gone.
        let _ = conn.stream.write(RESPONSE);
    }
}
