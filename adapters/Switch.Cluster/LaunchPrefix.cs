using System.Diagnostics;

namespace Switch.Cluster;

/// <summary>A program started through a prefix command that execs it, such as `ip netns exec NS` (a test's network
/// namespace): the process started is then the program itself, so its id and signals are its own.</summary>
public static class LaunchPrefix
{
    /// <summary>The start of <paramref name="program"/> under <paramref name="prefix"/> (empty: the program alone), its
    /// output redirected; the caller adds the program's arguments.</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyList<string> prefix, string program)
    {
        var info = new ProcessStartInfo(prefix.Count > 0 ? prefix[0] : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (prefix.Count == 0) return info;
        foreach (string arg in prefix.Skip(1)) info.ArgumentList.Add(arg);
        info.ArgumentList.Add(program);
        return info;
    }
}
