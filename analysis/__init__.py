"""The prompt analyses behind tools/analyze_prompts.py: one module per command (init_stats,
tsne, losses, nearest_words) and the helpers they share (common), which imports none of them."""
