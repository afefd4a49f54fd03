//! Integration tests of the control plane against real parts: reel servers on loopback,
//! SQLite and PostgreSQL, an S3 server, webhook receivers, the official Python SDK.

mod common;

mod auth;
mod broadcast;
mod cli;
mod connections;
mod layout;
mod observability;
mod outages;
mod raw_recording;
mod realtimekit;
mod recordings;
mod route_table;
mod sdk;
mod settings;
mod storage;
mod store;
mod webhooks;
