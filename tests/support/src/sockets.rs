//! What the inbound-hardening tests and the soak bench read and set on sockets: a reset
//! close, a fixed receive buffer, the bytes queued in the kernel, a process's memory peak.

use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Closes `stream` with a reset (SO_LINGER on, 0 s), as a client that gives up does.
pub fn reset(stream: TcpStream) {
    reset_on_close(&stream);
    drop(stream);
}

/// Sets SO_LINGER {on, 0}: when `stream` is closed, the kernel sends RST instead of FIN.
pub fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt reads one struct from a live local, on a socket the caller owns.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Fixes the receive buffer of `stream` (the kernel doubles it), so that what a client that
/// never reads can be sent does not depend on the machine's autotuning.
pub fn set_receive_buffer(stream: &TcpStream, bytes: libc::c_int) {
    // SAFETY: setsockopt reads one c_int from a live local, on a socket the caller owns.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Bytes received on `stream` that it has not read (FIONREAD).
pub fn unread(stream: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int to a live local.
    unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut n) };
    n.max(0) as usize
}

/// Bytes queued to send, summed over the established TCP sockets whose local port is
/// `port` (a server's accepted sockets), from /proc/net/tcp and /proc/net/tcp6.
pub fn send_queued(port: u16) -> usize {
    let mut total = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) = (fields.get(1), fields.get(3), fields.get(4)) else {
                continue;
            };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            // 0A is LISTEN, whose queue fields count connections.
            if local_port != Some(port) || *state == "0A" {
                continue;
            }
            total += queues.split(':').next().and_then(|q| usize::from_str_radix(q, 16).ok()).unwrap_or(0);
        }
    }
    total
}

/// A `/proc/PID/status` figure in KiB (`VmHWM`, `VmRSS`), 0 when unreadable.
pub fn status_kib(pid: i32, key: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Binds a TCP socket to `addr` without listening, and keeps it while the result lives: no
/// other socket can take that port there, and a connection to it is refused. For a test that
/// needs a port refused on one address while another address listens on the same number.
pub fn hold_refused(addr: std::net::SocketAddr) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else {
        return Err(std::io::Error::other("hold_refused takes an IPv4 address"));
    };
    // SAFETY: a fresh socket, owned by the OwnedFd from here on; bind reads one sockaddr_in
    // from a live local.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(owned)
    }
}
