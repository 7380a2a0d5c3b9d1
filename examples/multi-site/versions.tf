terraform {
  required_version = ">= 1.11"

  required_providers {
    hybrid = {
      source = "hybridops/hybrid"
    }
  }

  # The state lives in PostgreSQL, shared by everyone who runs this
  # configuration. Where is not written here: the connection string comes
  # from PG_CONN_STR (or `-backend-config="conn_str=..."`), the password, if
  # any, from PGPASSWORD or ~/.pgpass, so no credential is committed.
  #
  # Every command that writes state (plan, apply, destroy, import, state
  # mv/rm, console) first takes a PostgreSQL advisory lock on this state; a
  # second run waits for it up to -lock-timeout, then fails with "Error
  # acquiring the state lock".
  backend "pg" {
    schema_name = "hybrid_sites"
  }
}

# The provider reads HYBRID_ENDPOINT, HYBRID_TOKEN and HYBRID_CA_CERT_FILE
# from the environment.
provider "hybrid" {}
