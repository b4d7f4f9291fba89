//! Micro-benchmarks of the pure hot paths: request parsing and routing,
//! response writing, probe response parsing, verdict aggregation, DNS
//! answers and one lookup.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};

use healthcheck::check::Check;
use healthcheck::front::metrics::{self, Metrics};
use healthcheck::front::report;
use healthcheck::front::routes;
use healthcheck::probe::grpc;
use healthcheck::probe::{Action, Probe};
use healthcheck::resolver::{self as dns, Lookup, ResolvConf};
use healthcheck::verdict::{HttpReason, Reason, Verdict};
use healthcheck::wire::dns as message;
use healthcheck::wire::http::{self, Connection, Method, Parse};

/// What kubelet's HTTP prober sends.
const KUBELET_PROBE: &[u8] = b"GET /all HTTP/1.1\r\nHost: 10.1.2.3:8081\r\nUser-Agent: kube-probe/1.31\r\n\
Accept: */*\r\nConnection: close\r\n\r\n";
/// A typical health endpoint's answer.
const UPSTREAM_OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
Date: Wed, 26 Nov 2026 15:20:00 GMT\r\nContent-Length: 3\r\n\r\nok\n";

fn checks(n: usize) -> Vec<Check> {
    (0..n)
        .map(|i| Check::parse(&format!("app{i}=http://127.0.0.1:{}/health", 8000 + i)).expect("valid check"))
        .collect()
}

fn inbound(c: &mut Criterion) {
    c.bench_function("http/parse kubelet probe", |b| {
        b.iter(|| match http::parse(black_box(KUBELET_PROBE)) {
            Parse::Complete(request, used) => (request.keep_alive, used),
            other => panic!("{other:?}"),
        })
    });
    c.bench_function("http/route and query", |b| {
        b.iter(|| match routes::route(Method::Get, black_box("/all?verbose&exclude=app3")) {
            routes::Route::All(query) => routes::parse_query(query).exclude.len(),
            other => panic!("{other:?}"),
        })
    });
    let mut out = Vec::with_capacity(512);
    c.bench_function("http/write_response 200", |b| {
        b.iter(|| {
            out.clear();
            http::write_response(&mut out, black_box(200), b"ok\n", false, Connection::KeepAlive);
            out.len()
        })
    });
}

fn outbound(c: &mut Criterion) {
    let check = &checks(1)[0];
    let mut probe = Probe::default();
    let now = Instant::now();
    c.bench_function("probe/one round of one check", |b| {
        b.iter(|| {
            // The engine's sequence for a healthy endpoint, sockets aside.
            assert!(matches!(probe.start(check, &check.addrs, now), Action::Connect(_)));
            assert_eq!(probe.connected(check, now), Action::Send);
            let n = probe.output(check).len();
            assert_eq!(probe.wrote(check, n), Action::Receive);
            probe.received(check, black_box(UPSTREAM_OK))
        })
    });
}

fn grpc_call(c: &mut Criterion) {
    // A grpc-go server's SERVING answer: SETTINGS, WINDOW_UPDATE, PING,
    // Huffman-coded headers, the message, the trailers.
    const ANSWER: &[u8] = include_bytes!("../tests/grpc/responses/go-serving.h2");
    let request = grpc::Request::new(b"127.0.0.1:9090", b"", &[]).expect("a request");
    let mut call = grpc::Call::default();
    let now = Instant::now();
    c.bench_function("grpc/one call, start to verdict", |b| {
        b.iter(|| {
            call.start(now + Duration::from_secs(1));
            assert_eq!(call.connected(&request, now), Action::Send);
            let n = call.output().len();
            assert_eq!(call.wrote(n), Action::Receive);
            call.received(black_box(ANSWER))
        })
    });
}

fn aggregation(c: &mut Criterion) {
    let checks = checks(8);
    let mut verdicts = vec![Verdict::Pass; checks.len()];
    let mut out = Vec::with_capacity(1024);
    c.bench_function("check/write_report 8 passing", |b| {
        b.iter(|| {
            out.clear();
            report::write_report(&mut out, checks.iter().zip(black_box(&verdicts).iter().map(Some)), false)
        })
    });
    verdicts[5] = Verdict::Fail(Reason::Http(HttpReason::Status(503)));
    c.bench_function("check/write_report 8 verbose, one failing", |b| {
        b.iter(|| {
            out.clear();
            report::write_report(&mut out, checks.iter().zip(black_box(&verdicts).iter().map(Some)), true)
        })
    });
}

fn resolution(c: &mut Criterion) {
    let qname = message::encode_name("app.shop.svc.cluster.local").expect("a valid name");
    let target = message::encode_name("app-0.app.shop.svc.cluster.local").expect("a valid name");
    let answer = message::build_reply(
        7,
        0,
        &qname,
        message::TYPE_A,
        &[(&qname, message::TYPE_CNAME, 30, &target), (&target, message::TYPE_A, 30, &[10, 244, 1, 7])],
    );
    c.bench_function("dns/parse an answer with a CNAME", |b| {
        b.iter(|| message::parse_reply(black_box(&answer), 7, &qname, message::TYPE_A))
    });
    // A pod's resolv.conf: `app` is found under the first search domain.
    let conf = ResolvConf::parse(
        "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
    let now = Instant::now();
    // The same seed gives the same query IDs: the answers are built once.
    let (first, _) = Lookup::start("app", &conf, dns::Rng::new(1), now);
    let id = |q: &[u8]| u16::from_be_bytes([q[0], q[1]]);
    let [a, aaaa] = first.datagrams();
    let reply_a =
        message::build_reply(id(a), 0, &qname, message::TYPE_A, &[(&qname, message::TYPE_A, 5, &[10, 0, 0, 7])]);
    let reply_aaaa = message::build_reply(id(aaaa), 0, &qname, message::TYPE_AAAA, &[]);
    c.bench_function("dns/one lookup, start to addresses (A and AAAA)", |b| {
        b.iter(|| {
            let (mut lookup, _) = Lookup::start(black_box("app"), &conf, dns::Rng::new(1), now);
            lookup.received(&reply_aaaa, now);
            assert!(matches!(lookup.received(&reply_a, now), dns::Action::Done(Ok(_))));
        })
    });
}

/// A whole scrape's text, every check run twice and one in seven failing
/// once: right after a round (the checks' families and the /proc figures
/// written afresh), and repeated with nothing changed (both reused).
fn exposition(c: &mut Criterion) {
    for n in [8, 1000] {
        let checks = checks(n);
        let mut metrics = Metrics::new(&checks);
        let now = SystemTime::now();
        for i in 0..n {
            metrics.verdict(i, &Verdict::Pass, Duration::from_millis(2), now);
            let second = if i % 7 == 3 { Verdict::Fail(Reason::Http(HttpReason::Status(503))) } else { Verdict::Pass };
            metrics.verdict(i, &second, Duration::from_micros(900), now);
        }
        let mut out = Vec::new();
        let mut clock = Instant::now();
        c.bench_function(&format!("metrics/write {n} checks after a round"), |b| {
            b.iter(|| {
                metrics.verdict(0, &Verdict::Pass, Duration::from_micros(900), now);
                clock += metrics::PROCESS_REFRESH;
                out.clear();
                metrics.write(&mut out, black_box(3), clock);
                out.len()
            })
        });
        c.bench_function(&format!("metrics/write {n} checks repeated"), |b| {
            b.iter(|| {
                out.clear();
                metrics.write(&mut out, black_box(3), clock);
                out.len()
            })
        });
    }
}

criterion_group!(benches, inbound, outbound, grpc_call, aggregation, resolution, exposition);
criterion_main!(benches);
