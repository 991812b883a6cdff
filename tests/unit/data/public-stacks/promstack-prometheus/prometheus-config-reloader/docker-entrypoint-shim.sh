placeholder written for swarmops tests (not the upstream file)
