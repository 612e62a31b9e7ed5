// Placeholder entry point; replaced by the simulator's command line.
return 0;
