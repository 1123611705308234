"""reval_assets: the revalidation data sync as versioned, publishable data assets."""
