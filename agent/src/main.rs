//! The `hybrid-agent` binary.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("hybrid-agent: not built yet")
}
