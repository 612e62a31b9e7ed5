using System.Runtime.InteropServices;
using Switch.BankSim;

// The stand-alone bank simulator: one endpoint on 127.0.0.1 until Ctrl-C or SIGTERM.
var parsed = CommandLine.Parse(args);
if (parsed.Help)
{
    Console.Out.WriteLine(CommandLine.Usage);
    return 0;
}
if (parsed.Error is { } error)
{
    Console.Error.WriteLine($"Switch.BankSim: {error}");
    return 2;
}

var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true; // We stop ourselves, cleanly, below.
    stop.TrySetResult();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

BankSimulatorServer server;
try
{
    server = await BankSimulatorServer.StartAsync(parsed.Options!,
        (method, e) => Console.Error.WriteLine($"Switch.BankSim: handler for {method} failed: {e}"));
}
catch (IOException e)
{
    Console.Error.WriteLine($"Switch.BankSim: --port {parsed.Options!.Port}: cannot listen: {e.Message}");
    return 3;
}

await using (server)
{
    Console.Out.WriteLine($"Switch.BankSim listening on {server.Address}");
    Console.Out.WriteLine($"Switch.BankSim {server.Options}");
    Console.Out.Flush();
    await stop.Task;
}
Console.Out.WriteLine($"Switch.BankSim stopped: {server.Ledger.Counts}");
return 0;
