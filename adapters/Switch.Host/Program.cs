// Placeholder entry point; replaced by the switch host.
return 0;
