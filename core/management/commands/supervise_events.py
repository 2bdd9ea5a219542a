"""supervisord event listener under `make run`: counts restarts, backs off, gives up on crash loops."""

from __future__ import annotations

import os
import sys
import time
import xmlrpc.client
from typing import Any

from django.core.management.base import BaseCommand

from core.supervision import Supervision, delay_dir, logger, state_file


class Command(BaseCommand):
    help = "Run as supervisord's eventlistener (PROCESS_STATE events); not meant to be started by hand."

    def handle(self, *args: Any, **options: Any) -> None:
        from supervisor import childutils

        path = state_file()
        supervision = Supervision.resume(path)
        rpc = childutils.getRPCInterface(os.environ)
        while True:
            # stdout is supervisord's protocol channel: READY, then one RESULT per event; logs go to stderr
            headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
            event = headers["eventname"]
            if event == "TICK_60":
                supervision.tick(time.time())
                supervision.write_delays(delay_dir())
            elif event.startswith("PROCESS_STATE_"):
                stop = supervision.observe(event, childutils.get_headers(payload), time.time())
                if stop:
                    try:
                        rpc.supervisor.stopProcess(stop, False)
                    except xmlrpc.client.Fault as fault:  # it stopped on its own in the meantime
                        logger.info("stopping %s: %s", stop, fault.faultString)
                supervision.write(path)
                supervision.write_delays(delay_dir())
            childutils.listener.ok(sys.stdout)
