//! Host networking for VMs: one Linux bridge per VLAN segment, attached to
//! the agent's uplink, and one tap per VM.
