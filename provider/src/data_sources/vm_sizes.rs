//! `hybrid_vm_sizes` data source: the VM sizes the service offers for
//! control planes and node pools.

use async_trait::async_trait;
use hybrid_api::VmSize;
use hybrid_cty::Value;

use super::shared::computed_list;
use crate::client::HostClient;
use crate::errors;
use crate::framework::schema::Attribute;
use crate::framework::{Attr, DataSource, Diagnostics, Schema, ToValue};

pub struct VmSizesDataSource;

#[async_trait]
impl DataSource<HostClient> for VmSizesDataSource {
    fn type_name(&self) -> &'static str {
        "hybrid_vm_sizes"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Reads the VM size catalogue: the sizes a control plane or node pool may use, \
             with their vCPUs, memory and OS disk.",
            vec![
                computed_list(
                    "sizes",
                    vec![
                        Attribute::string("name")
                            .computed()
                            .description("Size name, e.g. `Standard_A4_v2`."),
                        Attribute::number("vcpus")
                            .computed()
                            .description("vCPUs of one VM."),
                        Attribute::number("memory_mib")
                            .computed()
                            .description("Memory of one VM, MiB."),
                        Attribute::number("disk_gib")
                            .computed()
                            .description("OS disk of one VM, GiB."),
                    ],
                )
                .description("Every VM size of the catalogue, in the service's order."),
            ],
        )
    }

    async fn read(&self, client: &HostClient, _config: &Value, diags: &mut Diagnostics) -> Value {
        match client.list_vm_sizes().await {
            Ok(sizes) => to_state(&sizes).to_value(),
            Err(e) => {
                errors::report(diags, "Cannot read the VM size catalogue", &e);
                Value::Null
            }
        }
    }
}

crate::model! {
    /// The data source's state.
    pub(crate) struct VmSizesModel {
        pub sizes: Attr<Vec<VmSizeModel>>,
    }
}

crate::model! {
    /// One VM size.
    pub(crate) struct VmSizeModel {
        pub name: Attr<String>,
        pub vcpus: Attr<u32>,
        pub memory_mib: Attr<u64>,
        pub disk_gib: Attr<u64>,
    }
}

pub(crate) fn to_state(sizes: &[VmSize]) -> VmSizesModel {
    VmSizesModel {
        sizes: Attr::Known(
            sizes
                .iter()
                .map(|s| VmSizeModel {
                    name: Attr::Known(s.name.clone()),
                    vcpus: Attr::Known(s.vcpus),
                    memory_mib: Attr::Known(s.memory_mib),
                    disk_gib: Attr::Known(s.disk_gib),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::shared::tests::{assert_fits, int, items, text};

    fn to_state(sizes: &[VmSize]) -> Value {
        super::to_state(sizes).to_value()
    }

    #[test]
    fn sizes_keep_order_and_amounts() {
        let sizes = vec![
            VmSize {
                name: "Standard_A2_v2".into(),
                vcpus: 2,
                memory_mib: 4096,
                disk_gib: 64,
            },
            VmSize {
                name: "Standard_D8s_v3".into(),
                vcpus: 8,
                memory_mib: 32768,
                disk_gib: 128,
            },
        ];
        let state = to_state(&sizes);
        assert_fits(&VmSizesDataSource.schema(), &state);
        let listed = items(&state, "sizes");
        assert_eq!(listed.len(), 2);
        assert_eq!(text(&listed[0], "name"), "Standard_A2_v2");
        assert_eq!(text(&listed[1], "name"), "Standard_D8s_v3");
        assert_eq!(int(&listed[1], "vcpus"), 8);
        assert_eq!(int(&listed[1], "memory_mib"), 32768);
        assert_eq!(int(&listed[1], "disk_gib"), 128);
    }
}
