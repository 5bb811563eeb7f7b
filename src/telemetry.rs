//! Logging: `tracing` with an env filter (RUST_LOG), request spans from
//! tracing-actix-web carrying a request id.
//!
//! Invariant: a request gets exactly the span tracing-actix-web's default
//! builder would give it whenever the subscriber records such spans; only
//! when it would discard them is the span not built at all.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::{Level, Span};
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored (tests).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where the default builder's spans come from, so filters such as
/// `tracing_actix_web=info` keep choosing them.
const ROOT_SPAN_TARGET: &str = "tracing_actix_web::root_span_builder";

/// The default request span, built only when the subscriber wants it.
/// Building it matches the route a second time, reads the connection info
/// and formats a dozen fields before the subscriber is asked; with request
/// spans filtered out (RUST_LOG=warn) that was 7% of a listing request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if tracing::span_enabled!(target: ROOT_SPAN_TARGET, Level::INFO) {
            DefaultRootSpanBuilder::on_request_start(request)
        } else {
            Span::none()
        }
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App, HttpResponse};
    use tracing_actix_web::{RootSpan, TracingLogger};

    /// What the request span of one request was under `filter`: `None`
    /// when none was built, else its name and target.
    async fn span_under(filter: &str) -> Option<(String, String)> {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_writer(std::io::sink)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(App::new().wrap(TracingLogger::<RequestSpan>::new()).route(
            "/",
            web::get().to(|span: RootSpan| async move {
                let seen = span
                    .metadata()
                    .filter(|_| !span.is_disabled())
                    .map(|m| (m.name().to_owned(), m.target().to_owned()));
                HttpResponse::Ok().json(seen)
            }),
        ))
        .await;
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/").to_request()).await
    }

    #[actix_web::test]
    async fn request_spans_are_built_exactly_when_the_filter_keeps_them() {
        let default_span = Some(("HTTP request".to_owned(), ROOT_SPAN_TARGET.to_owned()));
        for (filter, built) in [
            ("info", true),
            ("warn", false),
            ("warn,tracing_actix_web=info", true),
            ("info,tracing_actix_web=warn", false),
            ("debug", true),
        ] {
            let expected = if built { default_span.clone() } else { None };
            assert_eq!(span_under(filter).await, expected, "{filter}");
        }
    }
}
