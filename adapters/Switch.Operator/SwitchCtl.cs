namespace Switch.Operator;

public static class SwitchCtl
{
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        stderr.WriteLine("switchctl: not built yet");
        return Task.FromResult(1);
    }
}
