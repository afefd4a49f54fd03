//! reel: a self-hosted recording service for real-time calls and broadcasts.
//!
//! # Layout
//! - [`config`]: one [`config::Config`] from a TOML file, environment variables and flags.
//! - [`domain`]: calls, call types, settings, sessions, recordings, permissions, events. Pure.
//! - [`store`]: persistence on SQLite (default) or PostgreSQL; the only place with SQL.
//! - [`bus`]: the packet bus: published tracks fanned out to players and recorders.
//! - [`media`]: the SFU (WHIP/WHEP on str0m) and rooms; publishes into the bus and reports
//!   what happens in calls as [`domain::CallActivity`].
//! - [`rtp`]: RTP payload knowledge without I/O.
//! - [`mux`]: Matroska/WebM files through FFmpeg, the only code that calls it.
//! - [`recorders`]: the recorders, each behind one narrow port ([`recorders::Port`]).
//! - [`service`]: the domain services the API dialects call, what they make of the media
//!   plane's reports, and the supervisor that runs recorders.
//! - [`storage`]: local disk and S3 targets, signed and presigned links, resumable uploads.
//! - [`webhooks`]: the durable outbox's dispatcher and signing.
//! - [`auth`]: API keys, HS256 tokens, signed download links; [`secret`]: redaction.
//! - [`api`]: the axum router and its dialects.
//! - [`server`]: assembling and running it all; [`cli`]: the `reel` command.
#![warn(missing_docs)]
// FFmpeg's raw API is reached from `mux` alone.
#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod backoff;
pub mod browser;
pub mod bus;
pub mod cli;
pub mod config;
pub mod domain;
pub mod layout;
pub mod media;
pub mod metrics;
#[allow(unsafe_code)]
pub mod mux;
pub mod rawtools;
pub mod recorders;
pub use reel_rtp as rtp;
pub mod secret;
pub mod server;
pub mod service;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod webhooks;
