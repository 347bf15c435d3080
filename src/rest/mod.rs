pub fn router(_api: crate::grpc::Api, _cfg: &crate::config::Config) -> axum::Router { axum::Router::new() }
