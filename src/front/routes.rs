//! The endpoints `serve` answers, from the request target: `/self`,
//! `/all` and `/all/NAME` with their query (`verbose`, `exclude=`,
//! `format=json`), `/metrics`; anything else is not found.

use crate::wire::http::Method;
use crate::wire::text;

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
}

pub fn parse_query(query: &str) -> Query<'_> {
    let mut q = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "verbose" => q.verbose = true,
            "format" => q.json = value == "json",
            "exclude" => q.exclude.push(value),
            _ => {}
        }
    }
    q
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
        assert_eq!(q, Query { verbose: true, json: false, exclude: vec!["a", "b%2Dc"] });
        assert!(parse_query("format=json&exclude=a").json);
        assert!(!parse_query("format=json&format=text").json);
        assert_eq!(parse_query(""), Query::default());
        assert_eq!(percent_decode("b%2Dc"), Some("b-c".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b"), Some("a b".into()));
        assert_eq!(percent_decode_path("a+b%3Fq=1"), Some("a+b?q=1".into()));
        assert_eq!(percent_decode_path("%6"), None);
    }
}
