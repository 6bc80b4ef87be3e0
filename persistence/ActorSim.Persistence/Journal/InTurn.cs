using Akka.Actor;

namespace ActorSim.Persistence.Journal;

/// <summary>Deterministic mode for the Marten plugins (<c>actorsim.deterministic = on</c>, which
/// <c>SimHost.BaseConfig(deterministic: true)</c> sets along with one dispatcher thread for every actor):
/// the journal and the snapshot store do their database work inside their own actor's turn and hand
/// Akka a finished task, so Akka's code around the call goes on synchronously and sends the answers
/// from that turn, as <c>InMemoryJournal</c> does. (Akka.Persistence 1.5.73, read from its IL:
/// <c>AsyncWriteJournal.ExecuteBatch</c>, called from the write's turn, awaits the circuit breaker's
/// call, which awaits our task through <c>WaitAsync</c>; each is finished, so nothing yields.)
/// Otherwise an answer would come from a thread-pool thread whenever the database replied, and where
/// it falls among the other actors' messages on the one dispatcher thread would depend on timing. The
/// thread waits for each commit, so this mode is slow (one commit per write, no merging): it is for
/// reproducing a run, not for throughput.</summary>
internal static class InTurn
{
    /// <summary>The key <c>SimHost.BaseConfig</c> sets (the actors project; persistence does not
    /// reference it).</summary>
    public const string ConfigKey = "actorsim.deterministic";

    public static bool Enabled(ActorSystem system) => system.Settings.Config.GetBoolean(ConfigKey, false);

    /// <summary>When <paramref name="inTurn"/>, <paramref name="task"/> waited for on this thread and
    /// its outcome given as a finished task (a failure as a faulted one, as Akka expects from an async
    /// call); else <paramref name="task"/> as it is. The plugins' awaits do not need this thread back
    /// (<c>ConfigureAwait(false)</c>; an actor's turn has no synchronization context).</summary>
    public static Task<T> Finish<T>(bool inTurn, Task<T> task)
    {
        if (!inTurn) return task;
        try
        {
            return Task.FromResult(task.GetAwaiter().GetResult());
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }

    public static Task Finish(bool inTurn, Task task)
    {
        if (!inTurn) return task;
        try
        {
            task.GetAwaiter().GetResult();
            return Task.CompletedTask;
        }
        catch (Exception e)
        {
            return Task.FromException(e);
        }
    }
}
