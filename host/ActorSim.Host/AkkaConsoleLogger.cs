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
    /// <summary>The settings that select it, and <see cref="AkkaStdoutLogger"/> for when it is not running.</summary>
    public const string Hocon = """
        akka.loggers = ["ActorSim.Host.AkkaConsoleLogger, actorsim"]
        akka.stdout-logger-class = "ActorSim.Host.AkkaStdoutLogger, actorsim"
        """;

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

    /// <summary>Akka's own form of the event, or the one-line form for one caused by a database outage
    /// (an error, or a warning: Akka 1.5's carry a cause too).</summary>
    public static string Format(LogEvent e)
    {
        if (e.Cause is not { } cause || !Outages.IsTransient(cause)) return e.ToString();
        var why = new List<string>();
        for (var x = cause; x is not null; x = x.InnerException)
            if (!why.Contains(x.Message)) why.Add(x.Message);
        var level = e.LogLevel() switch
        {
            LogLevel.ErrorLevel => "ERROR",
            LogLevel.WarningLevel => "WARNING",
            LogLevel.InfoLevel => "INFO",
            _ => "DEBUG",
        };
        return string.Create(CultureInfo.InvariantCulture,
            $"[{level}][{e.Timestamp:MM/dd/yyyy HH:mm:ss.fff}Z][{e.LogSource}] {e.Message} ({cause.GetType().Name}: {string.Join(": ", why)})");
    }
}

/// <summary>Akka's logger before the loggers start and after they stop (<c>akka.stdout-logger-class</c>):
/// <see cref="AkkaConsoleLogger"/>'s form, on stderr. Akka's own (StandardOutLogger) wrote on stdout, with
/// the cause's stack: a run stopped past the outage limit printed, now and then, an actor's failed write
/// that came after the loggers stopped (LoggingBus.StopDefaultLoggers, in ActorSystem.Terminate) as
/// Npgsql's ~20-line stack in the command's report.</summary>
public sealed class AkkaStdoutLogger : MinimalLogger
{
    protected override void Log(object message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Console.Error.WriteLine(message is LogEvent e ? AkkaConsoleLogger.Format(e) : message.ToString());
    }
}
