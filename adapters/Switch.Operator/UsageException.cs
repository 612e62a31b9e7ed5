namespace Switch.Operator;

/// <summary>A bad argument found locally: exit 2, nothing sent.</summary>
public sealed class UsageException(string message) : Exception(message);
