//! Switchyard's operator: reconciles AIProvider, AIModel and AIRoutingPolicy status and
//! streams each pod's compiled config to its sidecar.

pub mod status;
