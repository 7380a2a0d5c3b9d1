# A custom location is imported by its id, /custom-locations/<name>.
terraform import hybrid_custom_location.example /custom-locations/site-a
