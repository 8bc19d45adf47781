"""Look at a latent space: PCA, neighbours, t-SNE, UMAP, metrics, exports."""
