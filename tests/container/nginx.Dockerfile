# SPDX-License-Identifier: Apache-2.0
# The workload of tests/container/agent_container_test.sh: nginx from Debian packages, in an image
# of its own, so that its executable and dpkg database exist only inside the container.
# One nginx process (master_process off) as root, listening on 8080: the test runs it with every
# capability dropped, which the agent (uid 0 with CAP_BPF and CAP_PERFMON only, like the
# DaemonSet) needs in order to read its /proc/<pid>/exe and /proc/<pid>/root; a master that
# switches workers to www-data needs CAP_SETUID/SETGID, and those processes are then closed to an
# agent without CAP_SYS_PTRACE.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* \
 && head -c 10000 /dev/zero | tr '\0' w > /var/www/html/payload
COPY nginx.conf /etc/nginx/nginx.conf
EXPOSE 8080
ENTRYPOINT ["/usr/sbin/nginx"]
