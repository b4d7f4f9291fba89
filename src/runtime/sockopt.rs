//! Socket options set with setsockopt(2): the few the loop needs that mio
//! and std do not offer. Each is best effort: a socket without it still works.

use std::os::fd::AsRawFd;

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
    fn linger_is_set_as_asked() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(get_linger(&socket), (0, 0));
        set_linger(&socket, 1);
        assert_eq!(get_linger(&socket), (1, 1));
        set_linger(&socket, 0);
        assert_eq!(get_linger(&socket), (1, 0));
    }
}
