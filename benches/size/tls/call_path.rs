/// Size measurement only (benches/size/tls/measure appends this): one blocking GET over TLS
/// through the tls machine, so that LTO keeps its code. `HC_TLS_GET=HOST:PORT healthcheck`.
#[cfg(feature = "tls")]
fn tls_get(addr: &str) -> ExitCode {
    use healthcheck::tls::{Alpn, Client, Read};
    use std::io::{Read as _, Write as _};
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let (Ok(mut sock), Ok(mut tls)) = (std::net::TcpStream::connect(addr), Client::new(host, Alpn::Http1)) else {
        return ExitCode::from(2);
    };
    tls.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (mut net, mut plain) = ([0u8; 4096], [0u8; 4096]);
    loop {
        let Ok(_) = tls.transmit(&mut sock) else { return ExitCode::from(2) };
        let Ok(n) = sock.read(&mut net) else { return ExitCode::from(2) };
        let mut fed = 0;
        let result: Result<bool, healthcheck::tls::TlsError> = (|| {
            if n == 0 {
                tls.receive_eof()?;
            }
            loop {
                fed += tls.receive(&net[fed..n])?;
                loop {
                    match tls.read(&mut plain)? {
                        Read::Data(k) => drop(std::io::stdout().write_all(&plain[..k])),
                        Read::Pending => break,
                        Read::Closed => return Ok(true),
                    }
                }
                if fed == n {
                    return Ok(n == 0);
                }
            }
        })();
        match result {
            Ok(false) => {}
            Ok(true) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
}
