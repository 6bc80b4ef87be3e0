using System.Globalization;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using ActorSim.Persistence.Journal;

namespace ActorSim.Host;

/// <summary>Akka's log as the commands print it: on stderr (stdout is the command's report), and an
/// error caused by the database being away (<see cref="Outages.IsTransient"/>) on one line, its cause's
/// type and message without the stack trace. The command has already said the database is away and
/// what it does about it (it rides the outage out, or stops with exit 3); when a run stops past the
/// limit, each actor whose write failed reported it with ~20 lines of Npgsql's stack. Any other error
/// keeps its stack trace: that one is a bug to report.</summary>
public sealed class AkkaConsoleLogger : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    /// <summary>The <c>akka.loggers</c> setting that selects it.</summary>
    public const string Hocon = "akka.loggers = [\"ActorSim.Host.AkkaConsoleLogger, actorsim\"]";

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                Console.Error.WriteLine(Format(e));
                return true;
            default:
                return false;
        }
    }

    /// <summary>Akka's own form of the event, or the one-line form for a database outage's error.</summary>
    public static string Format(LogEvent e)
    {
        if (e is not Error { Cause: { } cause } error || !Outages.IsTransient(cause)) return e.ToString();
        var why = new List<string>();
        for (var x = cause; x is not null; x = x.InnerException)
            if (!why.Contains(x.Message)) why.Add(x.Message);
        return string.Create(CultureInfo.InvariantCulture,
            $"[ERROR][{error.Timestamp:MM/dd/yyyy HH:mm:ss.fff}Z][{error.LogSource}] {error.Message} ({cause.GetType().Name}: {string.Join(": ", why)})");
    }
}
