//! Generates the gRPC code with a vendored protoc, so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Work bodies and statuses pass through without copies.
    config.bytes(["."]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/flotilla/agent/v1/agent.proto"],
        &["proto"],
    )?;
    Ok(())
}
