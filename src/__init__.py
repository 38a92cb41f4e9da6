"""safetynet-ews: early warning for children in difficult circumstances."""
