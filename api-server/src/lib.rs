//! The Beer Meetup API server: thin axum handlers over pure domain rules and a `Store` trait.

pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod redis_layer;
pub mod retention;
pub mod search;
pub mod store;
pub mod view_cache;

pub use config::Config;
pub use events::{BroadcastHub, Event, EventSink, MeetupEvent};
pub use http::{AppState, app};
