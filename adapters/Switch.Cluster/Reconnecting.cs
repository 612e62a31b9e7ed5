namespace Switch.Cluster;

/// <summary>The one loop of the observer's watch and the keeper's stream: run a connection until it breaks, say why,
/// pause, connect again, until stopped.</summary>
internal static class Reconnecting
{
    public static async Task RunAsync(Func<CancellationToken, Task> connection, Action<Exception> broke, int pauseMs, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await connection(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                broke(e);
            }
            try
            {
                await Task.Delay(pauseMs, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
