# A cluster is imported by its id, /clusters/<name>.
terraform import hybrid_cluster.example /clusters/prod-a
