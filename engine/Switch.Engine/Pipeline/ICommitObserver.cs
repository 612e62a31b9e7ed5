namespace Switch.Engine.Pipeline;

/// <summary>Sees the journal's group commits (for metrics), on the journal thread.</summary>
public interface ICommitObserver
{
    void Committed(long elapsedTicks, int events);
}
