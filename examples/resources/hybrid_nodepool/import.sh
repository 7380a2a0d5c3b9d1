# A node pool is imported by its id, /clusters/<cluster>/nodepools/<name>.
terraform import hybrid_nodepool.web /clusters/apps/nodepools/web1
