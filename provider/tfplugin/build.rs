//! Compiles the tfplugin6 and go-plugin protobuf definitions with protox (pure
//! Rust, no `protoc` needed) and generates prost messages plus tonic client and
//! server code. Server traits get default method bodies answering
//! `Unimplemented`, so a provider implements only the RPCs it supports.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tfplugin6.proto",
        "proto/grpc_controller.proto",
        "proto/grpc_broker.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
