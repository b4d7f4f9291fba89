//! Socket options set with setsockopt(2): the few the loop needs that mio
//! and std do not offer. Each is best effort: a socket without it still works.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets an integer option.
pub(crate) fn set_int(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: setsockopt reads one c_int from a live local, on a socket the
    // caller owns.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sets SO_LINGER on, `secs` seconds. With 0 a close resets the
/// connection and waits for nothing.
pub(crate) fn set_linger(socket: &impl AsRawFd, secs: libc::c_int) {
    let linger = libc::linger { l_onoff: 1, l_linger: secs };
    // SAFETY: as above, with one struct linger.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A non-blocking listener on `[::]:port` that takes IPv4 connections too:
/// IPV6_V6ONLY off before the bind, as Go's `net.Listen` sets it, whatever
/// the host's `net.ipv6.bindv6only` default (neither mio nor std can set an
/// option before binding). SO_REUSEADDR and the backlog are mio's.
pub(crate) fn listen_dual_stack(port: u16) -> io::Result<std::net::TcpListener> {
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers; the descriptor it returns is
    // owned by `socket` from here on, closed on every error path.
    let socket = unsafe {
        let fd = libc::socket(libc::AF_INET6, flags, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    set_int(&socket, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
    // SAFETY: an all-zero sockaddr_in6 is the unspecified address, port 0.
    let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    addr.sin6_port = port.to_be();
    let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // SAFETY: bind reads `len` bytes of a live local; listen takes no pointer.
    unsafe {
        if libc::bind(socket.as_raw_fd(), (&addr as *const libc::sockaddr_in6).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(socket.as_raw_fd(), 1024) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(std::net::TcpListener::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_linger(socket: &impl AsRawFd) -> (libc::c_int, libc::c_int) {
        let mut linger = libc::linger { l_onoff: 0, l_linger: 0 };
        let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a live local.
        unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&mut linger as *mut libc::linger).cast(),
                &mut len,
            );
        }
        (linger.l_onoff, linger.l_linger)
    }

    #[test]
    fn dual_stack_takes_both_families() {
        let Ok(listener) = listen_dual_stack(0) else { return }; // no IPv6 here
        let port = listener.local_addr().unwrap().port();
        for client in ["127.0.0.1", "::1"] {
            let connected = std::net::TcpStream::connect((client, port));
            assert!(connected.is_ok() || client == "::1", "{client}: {connected:?}");
        }
        let mut v6only: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a live local.
        unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                (&mut v6only as *mut libc::c_int).cast(),
                &mut len,
            );
        }
        assert_eq!(v6only, 0);
    }

    #[test]
    fn linger_is_set_as_asked() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(get_linger(&socket), (0, 0));
        set_linger(&socket, 1);
        assert_eq!(get_linger(&socket), (1, 1));
        set_linger(&socket, 0);
        assert_eq!(get_linger(&socket), (1, 0));
    }
}
