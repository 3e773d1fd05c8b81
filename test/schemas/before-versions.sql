-- ormq's tables as ensureSchema made them before it recorded a schema version (the first
-- one the database records is 1): pg_dump --schema-only --no-owner --no-privileges of a database
-- that ensureSchema built at commit fb4e6fa, psql's \restrict lines left out.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pg_trgm; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;


--
-- Name: EXTENSION pg_trgm; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_trgm IS 'text similarity measurement and index searching based on trigrams';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: ormq_admin_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_admin_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor character varying(150),
    action character varying(50) NOT NULL,
    page character varying(20) NOT NULL,
    object_id character varying(64),
    summary text NOT NULL
);


--
-- Name: ormq_admin_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.ormq_admin_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ormq_admin_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.ormq_admin_log_id_seq OWNED BY public.ormq_admin_log.id;


--
-- Name: ormq_cluster; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_cluster (
    id character(32) NOT NULL,
    name character varying(100) NOT NULL,
    host character varying(255) NOT NULL,
    pid integer NOT NULL,
    started timestamp with time zone NOT NULL,
    heartbeat timestamp with time zone NOT NULL,
    beat_ms integer NOT NULL,
    state character varying(10) NOT NULL,
    workers integer NOT NULL,
    busy integer NOT NULL,
    done bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    version character varying(50) NOT NULL,
    tasks jsonb DEFAULT '[]'::jsonb NOT NULL
);


--
-- Name: ormq_metric; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_metric (
    span_minutes smallint NOT NULL,
    bucket timestamp with time zone NOT NULL,
    key character varying(100) NOT NULL,
    func character varying(256) NOT NULL,
    success boolean NOT NULL,
    count bigint NOT NULL,
    runtime_sum double precision NOT NULL,
    runtime_max double precision NOT NULL,
    wait_sum double precision NOT NULL,
    wait_max double precision NOT NULL,
    runtime_hist jsonb NOT NULL,
    wait_hist jsonb NOT NULL
);


--
-- Name: ormq_paused_key; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_paused_key (
    key character varying(100) NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: ormq_queued; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_queued (
    id bigint NOT NULL,
    key character varying(100) NOT NULL,
    payload jsonb NOT NULL,
    lock timestamp with time zone,
    run_at timestamp with time zone,
    linked boolean DEFAULT false NOT NULL,
    locked_by character(32)
)
WITH (fillfactor='50');


--
-- Name: ormq_queued_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.ormq_queued_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ormq_queued_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.ormq_queued_id_seq OWNED BY public.ormq_queued.id;


--
-- Name: ormq_schedule; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_schedule (
    id integer NOT NULL,
    name character varying(100),
    func character varying(256) NOT NULL,
    hook character varying(256),
    args jsonb DEFAULT '[]'::jsonb NOT NULL,
    kwargs jsonb DEFAULT '{}'::jsonb NOT NULL,
    schedule_type character varying(2) NOT NULL,
    minutes smallint,
    repeats integer DEFAULT '-1'::integer NOT NULL,
    next_run timestamp with time zone NOT NULL,
    cron character varying(100),
    task character(32),
    cluster character varying(100),
    intended_date_kwarg character varying(100),
    anchor timestamp with time zone,
    time_zone character varying(64),
    paused_repeats integer,
    version integer DEFAULT 1 NOT NULL
);


--
-- Name: ormq_schedule_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.ormq_schedule_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ormq_schedule_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.ormq_schedule_id_seq OWNED BY public.ormq_schedule.id;


--
-- Name: ormq_task; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ormq_task (
    id character(32) NOT NULL,
    name character varying(100) NOT NULL,
    func character varying(256) NOT NULL,
    hook character varying(256),
    args jsonb DEFAULT '[]'::jsonb NOT NULL,
    kwargs jsonb DEFAULT '{}'::jsonb NOT NULL,
    result jsonb,
    "group" character varying(100),
    cluster character varying(100),
    enqueued timestamp with time zone NOT NULL,
    started timestamp with time zone NOT NULL,
    stopped timestamp with time zone NOT NULL,
    success boolean NOT NULL,
    attempt_count integer DEFAULT 1 NOT NULL,
    attempts jsonb DEFAULT '[]'::jsonb NOT NULL
);


--
-- Name: ormq_admin_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_admin_log ALTER COLUMN id SET DEFAULT nextval('public.ormq_admin_log_id_seq'::regclass);


--
-- Name: ormq_queued id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_queued ALTER COLUMN id SET DEFAULT nextval('public.ormq_queued_id_seq'::regclass);


--
-- Name: ormq_schedule id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_schedule ALTER COLUMN id SET DEFAULT nextval('public.ormq_schedule_id_seq'::regclass);


--
-- Name: ormq_admin_log ormq_admin_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_admin_log
    ADD CONSTRAINT ormq_admin_log_pkey PRIMARY KEY (id);


--
-- Name: ormq_cluster ormq_cluster_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_cluster
    ADD CONSTRAINT ormq_cluster_pkey PRIMARY KEY (id);


--
-- Name: ormq_metric ormq_metric_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_metric
    ADD CONSTRAINT ormq_metric_pkey PRIMARY KEY (span_minutes, bucket, key, func, success);


--
-- Name: ormq_paused_key ormq_paused_key_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_paused_key
    ADD CONSTRAINT ormq_paused_key_pkey PRIMARY KEY (key);


--
-- Name: ormq_queued ormq_queued_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_queued
    ADD CONSTRAINT ormq_queued_pkey PRIMARY KEY (id);


--
-- Name: ormq_schedule ormq_schedule_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_schedule
    ADD CONSTRAINT ormq_schedule_name_key UNIQUE (name);


--
-- Name: ormq_schedule ormq_schedule_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_schedule
    ADD CONSTRAINT ormq_schedule_pkey PRIMARY KEY (id);


--
-- Name: ormq_task ormq_task_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ormq_task
    ADD CONSTRAINT ormq_task_pkey PRIMARY KEY (id);


--
-- Name: ormq_admin_log_object_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_admin_log_object_idx ON public.ormq_admin_log USING btree (page, object_id, id DESC);


--
-- Name: ormq_cluster_name_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_cluster_name_idx ON public.ormq_cluster USING btree (name, heartbeat);


--
-- Name: ormq_queued_claim_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_queued_claim_idx ON public.ormq_queued USING btree (key, id);


--
-- Name: ormq_queued_run_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_queued_run_at_idx ON public.ormq_queued USING btree (key, run_at) WHERE (run_at IS NOT NULL);


--
-- Name: ormq_queued_task_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_queued_task_idx ON public.ormq_queued USING btree (((payload ->> 'id'::text))) WHERE linked;


--
-- Name: ormq_schedule_due_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_schedule_due_idx ON public.ormq_schedule USING btree (next_run, id);


--
-- Name: ormq_schedule_search_trgm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_schedule_search_trgm_idx ON public.ormq_schedule USING gin (name public.gin_trgm_ops, func public.gin_trgm_ops);


--
-- Name: ormq_task_cluster_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_cluster_idx ON public.ormq_task USING btree (cluster, success, stopped DESC, id DESC);


--
-- Name: ormq_task_func_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_func_idx ON public.ormq_task USING btree (func, success, stopped DESC, id DESC);


--
-- Name: ormq_task_group_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_group_idx ON public.ormq_task USING btree ("group", success, stopped DESC, id DESC);


--
-- Name: ormq_task_list_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_list_idx ON public.ormq_task USING btree (success, stopped DESC, id DESC);


--
-- Name: ormq_task_name_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_name_idx ON public.ormq_task USING btree (name, success, stopped DESC, id DESC);


--
-- Name: ormq_task_search_trgm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ormq_task_search_trgm_idx ON public.ormq_task USING gin (name public.gin_trgm_ops, func public.gin_trgm_ops, "group" public.gin_trgm_ops);


--
-- PostgreSQL database dump complete
--


