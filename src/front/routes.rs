//! The endpoints `serve` answers, from the request target: `/self`,
//! `/all` and `/all/NAME` with their query (`verbose`, `exclude=`,
//! `format=json`), `/metrics`; anything else is not found.

use crate::wire::http::{self, Method};
use crate::wire::text;

/// The `format` values `/all` takes.
const FORMATS: [&str; 2] = ["text", "json"];
/// How much of an unknown `format` value a 400 shows.
const MAX_SHOWN_FORMAT: usize = 64;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    SelfCheck,
    /// `/all` with its query string (may be empty).
    All(&'a str),
    /// `/all/NAME` with its query string.
    One(&'a str, &'a str),
    /// `/metrics`: answered at once from what past rounds found.
    Metrics,
    NotFound,
    MethodNotAllowed,
}

/// Routes on the exact path: nothing is decoded or normalised, so `/%73elf`
/// and `/all/../self` are simply not found. Only the NAME of `/all/NAME` is
/// decoded, by the caller (see [`percent_decode_path`]).
pub fn route(method: Method, target: &str) -> Route<'_> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let route = match path {
        "/self" => Route::SelfCheck,
        "/all" => Route::All(query),
        "/metrics" => Route::Metrics,
        _ => match path.strip_prefix("/all/") {
            Some(name) if !name.is_empty() => Route::One(name, query),
            _ => return Route::NotFound,
        },
    };
    match method {
        Method::Get | Method::Head => route,
        Method::Other => Route::MethodNotAllowed,
    }
}

/// The query parameters `/all` understands.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub(crate) verbose: bool,
    /// `format=json`: the verdicts as JSON.
    pub json: bool,
    /// The raw (still percent-encoded) `exclude` values.
    pub exclude: Vec<&'a str>,
    /// The first `format` that is neither `text` nor `json`, raw: the
    /// request is a 400 naming it, never a silent text answer.
    pub bad_format: Option<&'a str>,
}

pub fn parse_query(query: &str) -> Query<'_> {
    let mut q = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "verbose" => q.verbose = true,
            "format" => match percent_decode(value).as_deref() {
                Some("json") => q.json = true,
                Some("text") => q.json = false,
                _ => q.bad_format = q.bad_format.or(Some(value)),
            },
            "exclude" => q.exclude.push(value),
            _ => {}
        }
    }
    q
}

/// The body of the 400 for an unknown `format`: the value (decoded when it
/// decodes, escaped, cut short) and the accepted ones.
pub fn bad_format_body(raw: &str) -> Vec<u8> {
    let decoded = percent_decode(raw);
    let value = decoded.as_deref().unwrap_or(raw).as_bytes();
    let mut body = b"unknown format \"".to_vec();
    http::push_shown(&mut body, value, MAX_SHOWN_FORMAT);
    body.extend_from_slice(b"\": use ");
    body.extend_from_slice(FORMATS.join(" or ").as_bytes());
    body.push(b'\n');
    body
}

/// Decodes a query value: `%XX`, and `+` as space; None for bad escapes or
/// non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    decode(s, true)
}

/// Decodes the NAME of `/all/NAME`: `%XX` only (in a path `+` is a plus),
/// so `/all/host:8080/ready%3Ffull=1` names the check of
/// `http://host:8080/ready?full=1`. None for bad escapes or non-UTF-8.
pub fn percent_decode_path(s: &str) -> Option<String> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    String::from_utf8(text::percent_decode(s.as_bytes(), plus_is_space)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases = [
            (Method::Get, "/self", Route::SelfCheck),
            (Method::Head, "/self?x", Route::SelfCheck),
            (Method::Get, "/all", Route::All("")),
            (Method::Get, "/all?verbose&exclude=a", Route::All("verbose&exclude=a")),
            (Method::Get, "/all/app", Route::One("app", "")),
            (Method::Get, "/all/app?verbose", Route::One("app", "verbose")),
            (Method::Head, "/metrics", Route::Metrics),
            (Method::Get, "/metrics?x=1", Route::Metrics),
            (Method::Get, "/metrics/", Route::NotFound),
            (Method::Other, "/metrics", Route::MethodNotAllowed),
            (Method::Get, "/all/", Route::NotFound),
            (Method::Get, "/", Route::NotFound),
            (Method::Get, "/selfx", Route::NotFound),
            (Method::Get, "/%73elf", Route::NotFound),
            (Method::Get, "/all/../self", Route::One("../self", "")),
            (Method::Other, "/self", Route::MethodNotAllowed),
            (Method::Other, "/all/x", Route::MethodNotAllowed),
            (Method::Other, "/nope", Route::NotFound),
        ];
        for (method, target, want) in cases {
            assert_eq!(route(method, target), want, "{method:?} {target}");
        }
    }

    #[test]
    fn queries() {
        let q = parse_query("verbose&exclude=a&exclude=b%2Dc&x=1");
        assert_eq!(q, Query { verbose: true, json: false, exclude: vec!["a", "b%2Dc"], bad_format: None });
        assert!(parse_query("format=json&exclude=a").json);
        assert!(parse_query("format=%6Ason").json);
        assert!(!parse_query("format=json&format=text").json);
        for (query, bad) in [("format=xml", "xml"), ("format", ""), ("format=JSON", "JSON"), ("format=a&format=b", "a")]
        {
            assert_eq!(parse_query(query).bad_format, Some(bad), "{query}");
        }
        assert_eq!(bad_format_body("xml"), b"unknown format \"xml\": use text or json\n");
        assert_eq!(bad_format_body("%3C%22x%0A"), b"unknown format \"\\x3c\\\"x\\x0a\": use text or json\n");
        let long = bad_format_body(&"x".repeat(100));
        assert!(long.starts_with(format!("unknown format \"{}...\"", "x".repeat(64)).as_bytes()));
        assert_eq!(parse_query(""), Query::default());
        assert_eq!(percent_decode("b%2Dc"), Some("b-c".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b"), Some("a b".into()));
        assert_eq!(percent_decode_path("a+b%3Fq=1"), Some("a+b?q=1".into()));
        assert_eq!(percent_decode_path("%6"), None);
    }
}
