"""jupervisor's actors: one trio task per kernel, channel, heartbeat and restarter.

Each actor owns its state and talks to others only through typed messages posted to
its mailbox (attrs values over trio memory channels).
"""

from ._channel import ChannelConfig as ChannelConfig
from ._channel import ChannelHandle as ChannelHandle
from ._channel import ChannelStats as ChannelStats
from ._channel import Failure as Failure
from ._channel import FailWatchers as FailWatchers
from ._channel import Incoming as Incoming
from ._channel import Send as Send
from ._channel import Subscribe as Subscribe
from ._channel import Unwatch as Unwatch
from ._channel import Watch as Watch
from ._channel import run_channel as run_channel
from ._errors import ExecuteTimeout as ExecuteTimeout
from ._errors import JupervisorError as JupervisorError
from ._errors import KernelDied as KernelDied
from ._errors import KernelNotRunning as KernelNotRunning
from ._errors import KernelStartError as KernelStartError
from ._errors import NoSuchKernel as NoSuchKernel
from ._errors import RequestTimeout as RequestTimeout
from ._errors import StdinNotAvailable as StdinNotAvailable
from ._errors import unwrap_group as unwrap_group
from ._events import HeartbeatStatus as HeartbeatStatus
from ._events import KernelBusy as KernelBusy
from ._events import KernelDiedEvent as KernelDiedEvent
from ._events import KernelEvent as KernelEvent
from ._events import KernelFailed as KernelFailed
from ._events import KernelIdle as KernelIdle
from ._events import KernelReady as KernelReady
from ._events import KernelRestarting as KernelRestarting
from ._events import KernelStarting as KernelStarting
from ._events import KernelStopped as KernelStopped
from ._heartbeat import Beat as Beat
from ._heartbeat import HeartbeatConfig as HeartbeatConfig
from ._heartbeat import Missed as Missed
from ._heartbeat import run_heartbeat as run_heartbeat
from ._kernel import ConnectionFiles as ConnectionFiles
from ._kernel import GiveUp as GiveUp
from ._kernel import Interrupt as Interrupt
from ._kernel import Kill as Kill
from ._kernel import KernelActor as KernelActor
from ._kernel import KernelLaunch as KernelLaunch
from ._kernel import KernelOptions as KernelOptions
from ._kernel import Restart as Restart
from ._kernel import Shutdown as Shutdown
from ._kernel import run_kernel as run_kernel
from ._log import event as event
from ._mailbox import Mailbox as Mailbox
from ._mailbox import Promise as Promise
from ._mailbox import open_mailbox as open_mailbox
from ._ports import PortAllocator as PortAllocator
from ._process import ExitStatus as ExitStatus
from ._process import LocalProvisioner as LocalProvisioner
from ._process import Provisioner as Provisioner
from ._request import Answer as Answer
from ._request import ChannelSet as ChannelSet
from ._request import Exchange as Exchange
from ._request import StdinHandler as StdinHandler
from ._request import call as call
from ._zmqtrio import SocketOwner as SocketOwner
from ._zmqtrio import new_context as new_context
