//! The Beer Meetup Platform operator: a `BeerMeetupPlatform` custom resource turned into an API
//! server, a web app, a MongoDB replica set and a Redis cache.
//!
//! Reconcile is dereference → validate → build (pure) → apply → update status; see
//! [`controller`] for the driver and [`children`] for the pure builders of the child objects.

pub mod children;
pub mod controller;
pub mod crd;
pub mod images;
pub mod metrics;
pub mod names;
pub mod render;
pub mod status;
pub mod validate;

pub use controller::{ControllerConfig, run_controller, run_controller_until};
