using Switch.Operator;

// Ctrl-C stops a follow or a watch cleanly; a second Ctrl-C ends the process as usual.
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (stop.IsCancellationRequested) return;
    e.Cancel = true;
    stop.Cancel();
};
return await SwitchCtl.RunAsync(args, Console.Out, Console.Error, Environment.GetEnvironmentVariable, stop.Token);
