//! The API view of a vnet, with pool usage derived from its reservations.

use hybrid_api::{PoolKind, Vnet, VnetStatus, vnet_id};

use crate::ipam;
use crate::store::VnetSnapshot;

/// The API object of a stored vnet.
pub fn vnet(s: &VnetSnapshot) -> Vnet {
    let spec = &s.record.spec;
    Vnet {
        id: vnet_id(&s.record.name),
        name: s.record.name.clone(),
        etag: s.record.etag.clone(),
        spec: spec.clone(),
        provisioning_state: s.record.provisioning_state,
        status: VnetStatus {
            conditions: s.record.conditions.clone(),
            vm_ip_pool: ipam::usage(spec, &s.reservations, PoolKind::Vm),
            vip_pool: ipam::usage(spec, &s.reservations, PoolKind::Vip),
        },
        created_at: s.record.created_at.clone(),
        updated_at: s.record.updated_at.clone(),
    }
}
