//! The live endpoint, `GET /api/ws/`: one `WsSession` actor per socket
//! (protocol/README.md). Only this module knows about actix-web-actors; the
//! sessions reach the shop through the same services as the REST handlers
//! and hear about changes from the event hub.

pub mod frames;
pub mod limits;
pub mod session;

use crate::api::error::ApiError;
use crate::api::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/ws").route(web::get().to(connect)));
}

/// Upgrades to a WebSocket; credentials come in the first frame, never in
/// the URL, so they stay out of access logs.
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let max_frame = state.settings.live.max_frame;
    ws::WsResponseBuilder::new(session::WsSession::new(state), &req, stream)
        .frame_size(max_frame)
        .start()
        .map_err(|e| {
            ApiError::bad_request(
                "websocket_required",
                format!("this endpoint speaks WebSocket only: {e}"),
            )
        })
}
