"""The sdh provider service: the sports status of sportspeople on the sports ministry's national lists."""
